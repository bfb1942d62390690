"""Framing conserves events (within the kept region) and reproduces the reference spatial reductions exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.data import fixtures as fx
from snn_repro.data.events import make_events
from snn_repro.data.framing import frame_events, frame_shape, time_bin_index


@pytest.fixture
def events(rng):
    return fx.random_events(rng, 5000, 128, 128, 1_234_567, t0=1000)


@pytest.mark.parametrize("mode", ["time_bins", "event_count"])
def test_binning_conserves_every_event(events, mode):
    frames = frame_events(events, (128, 128, 2), 100, mode, 100)
    assert frames.shape == (100, 2, 128, 128) and frames.dtype == np.float32
    assert frames.sum() == len(events)
    for p in (0, 1):
        assert frames[:, p].sum() == (events["p"] == p).sum()


def test_time_bins_are_equal_duration(events):
    b = time_bin_index(events["t"], 100, "time_bins", 100)
    t0, t1 = events["t"].min(), events["t"].max()
    width = (t1 - t0 + 1) / 100
    assert b.min() == 0 and b.max() == 99
    assert np.array_equal(b, np.floor((events["t"] - t0) / width).astype(int))


def test_event_count_frames_hold_equal_counts(events):
    per_frame = frame_events(events, (128, 128, 2), 16, "event_count", 16).sum(axis=(1, 2, 3))
    assert per_frame.max() - per_frame.min() <= 1 and per_frame.sum() == 5000


def test_event_count_follows_time_order_even_if_unsorted(events, rng):
    shuffled = events[rng.permutation(len(events))]
    a = frame_events(events, (128, 128, 2), 8, "event_count", 8)
    b = frame_events(shuffled, (128, 128, 2), 8, "event_count", 8)
    assert np.array_equal(a, b)


def test_window_ms_keeps_first_T_windows():
    t = np.array([0, 5999, 6000, 11999, 12000, 30000, 299_999, 300_000])
    ev = make_events(np.zeros(8, int), np.zeros(8, int), t + 777, np.zeros(8, int))  # relative to the first event
    frames = frame_events(ev, (34, 34, 2), 50, "window_ms", 6)
    counts = frames.sum(axis=(1, 2, 3))
    assert counts[0] == 2 and counts[1] == 2 and counts[2] == 1 and counts[5] == 1 and counts[49] == 1
    assert frames.sum() == 7  # the event at 300 ms is in bin 50, beyond T = 50


def test_window_ms_from_zero_keeps_the_lead_in():
    ev = make_events([0, 1, 2], 0, [15_999, 16_000, 50_000], 1)
    first = frame_events(ev, (3, 1, 1), 4, "window_ms", 16)
    zero = frame_events(ev, (3, 1, 1), 4, "window_ms", 16, origin="zero")
    assert first[:, 0].tolist() == [1, 0, 0, 0] and first[:, 2].tolist() == [0, 0, 1, 0]
    assert zero[:, 0].tolist() == [1, 0, 0, 0] and zero[:, 1].tolist() == [0, 1, 0, 0]
    assert zero[:, 2].tolist() == [0, 0, 0, 1]


def test_sum_pool_128_to_42(events):
    frames = frame_events(events, (128, 128, 2), 10, "time_bins", 10, "sum_pool", 42)
    assert frames.shape == (10, 2, 42, 42)
    kept = (events["x"] < 126) & (events["y"] < 126)  # last two rows / columns dropped
    assert frames.sum() == kept.sum()
    full = frame_events(events, (128, 128, 2), 10, "time_bins", 10)
    pooled = full[..., :126, :126].reshape(10, 2, 42, 3, 42, 3).sum(axis=(3, 5))
    assert np.array_equal(frames, pooled)


@pytest.mark.parametrize("sensor,size", [((128, 128, 2), 64), ((128, 128, 2), 48), ((240, 180, 2), 48),
                                         ((120, 100, 2), 48), ((34, 34, 2), 64)])
def test_resize_matches_torch_nearest(rng, sensor, size):
    ev = fx.random_events(rng, 3000, sensor[0], sensor[1], 100_000)
    got = frame_events(ev, sensor, 4, "event_count", 4, "resize", size)
    full = torch.from_numpy(frame_events(ev, sensor, 4, "event_count", 4))
    want = F.interpolate(full, size=(size, size), mode="nearest").numpy()
    assert got.shape == (4, 2, size, size)
    assert np.array_equal(got, want)


def test_centre_crop(rng):
    ev = fx.random_events(rng, 3000, 34, 34, 300_000)
    frames = frame_events(ev, (34, 34, 2), 5, "time_bins", 5, "crop", 32)
    full = frame_events(ev, (34, 34, 2), 5, "time_bins", 5)
    assert np.array_equal(frames, full[..., 1:33, 1:33])
    inside = (ev["x"] >= 1) & (ev["x"] < 33) & (ev["y"] >= 1) & (ev["y"] < 33)
    assert frames.sum() == inside.sum()


def test_top_left_crop_keeps_x_y_below_size(rng):
    ev = fx.random_events(rng, 3000, 34, 34, 300_000)
    frames = frame_events(ev, (34, 34, 2), 5, "time_bins", 5, "crop", 32, crop_origin="top_left")
    full = frame_events(ev, (34, 34, 2), 5, "time_bins", 5)
    assert np.array_equal(frames, full[..., :32, :32])
    assert frames.sum() == ((ev["x"] < 32) & (ev["y"] < 32)).sum()


@pytest.mark.parametrize("sensor,size", [((128, 128, 2), 48), ((240, 180, 2), 48), ((128, 128, 2), 42)])
def test_area_resize_keeps_every_event(rng, sensor, size):
    ev = fx.random_events(rng, 5000, sensor[0], sensor[1], 100_000)
    got = frame_events(ev, sensor, 4, "event_count", 4, "area", size)
    assert got.shape == (4, 2, size, size) and got.sum() == len(ev)
    nearest = frame_events(ev, sensor, 4, "event_count", 4, "resize", size)
    assert nearest.sum() < 0.3 * len(ev)  # what nearest sampling keeps
    # each destination pixel sums the source pixels of its window: floor(c * size / n) == destination
    full = frame_events(ev, sensor, 4, "event_count", 4)
    cols = np.arange(sensor[0]) * size // sensor[0]
    rows = np.arange(sensor[1]) * size // sensor[1]
    want = np.zeros_like(got)
    np.add.at(want, (slice(None), slice(None), rows[:, None], cols[None, :]), full)
    assert np.array_equal(got, want)


def test_area_resize_at_an_integer_factor_is_sum_pool(rng):
    ev = fx.random_events(rng, 3000, 128, 128, 100_000)
    assert np.array_equal(frame_events(ev, (128, 128, 2), 3, "time_bins", 3, "area", 64),
                          frame_events(ev, (128, 128, 2), 3, "time_bins", 3, "sum_pool", 64))


def test_one_dimensional_sensor_gives_T_by_channels(rng):
    ev = make_events(rng.integers(0, 700, 400), 0, np.sort(rng.integers(0, 900_000, 400)), 1)
    frames = frame_events(ev, (700, 1, 1), 60, "window_ms", 16)
    assert frames.shape == (60, 700) and frames.sum() == 400
    assert frame_shape((700, 1, 1), 60, "none", 0) == (60, 700)


def test_events_outside_the_sensor_are_dropped_not_wrapped():
    ev = make_events([0, 10, 12], [0, 1, 1], [0, 1, 2], [0, 1, 1])
    frames = frame_events(ev, (11, 2, 2), 1, "time_bins", 1)
    assert frames.sum() == 2 and frames[0, 1, 1, 10] == 1


def test_framing_value_must_agree_with_T(events):
    with pytest.raises(ValueError, match="must equal T"):
        frame_events(events, (128, 128, 2), 16, "time_bins", 10)


def test_event_count_equals_tonic_to_frame_when_tonic_drops_nothing(events):
    import tonic

    ev = events[:4800]  # 4800 = 16 x 300: tonic's event bins keep every event
    tonic_events = np.zeros(len(ev), dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    for f in "xytp":
        tonic_events[f] = ev[f]
    want = tonic.transforms.ToFrame(sensor_size=(128, 128, 2), n_event_bins=16)(tonic_events)
    got = frame_events(ev, (128, 128, 2), 16, "event_count", 16)
    assert np.array_equal(got, want.astype(np.float32))
