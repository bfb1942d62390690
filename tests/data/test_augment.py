"""STCF (APBS eq. 7) and the frame augmentations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn_repro.augment.frames import RandomCrop, RandomHorizontalFlip, RandomRotation, crop_with_padding, rotate
from snn_repro.augment.stcf import SpatioTemporalCropFlip, crop_flip
from tests.data import fixtures as fx


@pytest.fixture
def events(rng):
    return fx.random_events(rng, 4000, 128, 128, 1_000_000, t0=20_000)


def test_crop_flip_maps_range_start_to_zero_and_end_to_length():
    d = np.array([3, 5, 10, 17, 20, 25])
    keep, v = crop_flip(d, 5, 20, flip=False)
    assert np.array_equal(keep, [False, True, True, True, True, False]) and np.array_equal(v, [0, 5, 12, 15])
    keep, v = crop_flip(d, 5, 20, flip=True)
    assert np.array_equal(v, [15, 10, 3, 0])  # D_A -> D_B - D_A, D_B -> 0


def test_flipping_twice_is_the_identity(events):
    for axis, hi in (("x", 127), ("t", int(events["t"].max()))):
        _, once = crop_flip(events[axis], 0, hi, flip=True)
        _, twice = crop_flip(once, 0, hi, flip=True)
        assert np.array_equal(twice, events[axis]) and not np.array_equal(once, events[axis])


@pytest.mark.parametrize("seed", range(5))
def test_stcf_keeps_events_in_range(events, seed):
    torch.manual_seed(seed)
    out = SpatioTemporalCropFlip(min_scale=0.5, flip_p=0.5)(events)
    assert 0 < len(out) <= len(events)
    assert out["x"].min() >= 0 and out["x"].max() <= 127 and out["y"].min() >= 0 and out["y"].max() <= 127
    assert out["t"].min() >= 0 and out["t"].max() <= events["t"].max() - events["t"].min()
    assert np.all(np.diff(out["t"]) >= 0)  # time order restored after a time flip
    assert len(events) == 4000  # the input is not modified


def test_stcf_full_scale_without_flip_only_moves_to_the_origin(events):
    out = SpatioTemporalCropFlip(min_scale=1.0, flip_p=0.0)(events)
    assert len(out) == len(events)
    for axis in "xyt":
        assert np.array_equal(out[axis], events[axis] - events[axis].min())


def test_stcf_full_scale_with_flip_mirrors_every_axis(events):
    out = SpatioTemporalCropFlip(min_scale=1.0, flip_p=1.0, axes=("x", "y"))(events)
    assert np.array_equal(out["x"], events["x"].max() - events["x"])
    assert np.array_equal(out["y"], events["y"].max() - events["y"])
    assert np.array_equal(out["t"], events["t"])


def test_stcf_rejects_bad_options():
    with pytest.raises(ValueError):
        SpatioTemporalCropFlip(min_scale=0.0)
    with pytest.raises(ValueError):
        SpatioTemporalCropFlip(axes=("z",))


def test_frame_ops_apply_one_draw_to_all_frames():
    frames = torch.arange(2 * 2 * 8 * 8, dtype=torch.float32).reshape(2, 2, 8, 8)
    torch.manual_seed(0)
    out = RandomCrop(pad=2)(frames)
    assert out.shape == frames.shape
    # the same offset for every frame: find it from frame 0 and check the rest
    matches = [(i, j) for i in range(5) for j in range(5)
               if torch.equal(crop_with_padding(frames, 2, i, j)[0, 0], out[0, 0])]
    assert len(matches) == 1
    assert torch.equal(crop_with_padding(frames, 2, *matches[0]), out)
    flipped = RandomHorizontalFlip(p=1.0)(frames)
    assert torch.equal(flipped, frames.flip(-1)) and torch.equal(RandomHorizontalFlip(p=0.0)(frames), frames)


def test_crop_with_padding_zero_fills():
    img = torch.ones(3, 32, 32)
    out = crop_with_padding(img, 4, 0, 0)
    assert out.shape == (3, 32, 32) and float(out[:, :4].sum()) == 0 and float(out[:, 4:, 4:].min()) == 1


def test_rotation():
    x = torch.rand(3, 2, 16, 16)
    assert torch.equal(rotate(x, 0.0), x)
    r = rotate(x, 90.0)
    assert torch.equal(r, torch.rot90(x, 1, dims=(-2, -1))) or torch.equal(r, torch.rot90(x, -1, dims=(-2, -1)))
    r45 = rotate(x, 45.0)
    assert float(r45[..., 0, 0].abs().sum()) == 0 and not torch.equal(r45, x)  # corners rotate out: zeros
    torch.manual_seed(3)
    angle = (2 * torch.rand(()).item() - 1) * 15
    torch.manual_seed(3)
    assert torch.equal(RandomRotation(degrees=15)(x), rotate(x, angle))


def test_stcf_rescale_maps_the_spatial_crop_back_onto_the_data_range(events):
    torch.manual_seed(3)
    literal = SpatioTemporalCropFlip(min_scale=0.5, flip_p=0.0, axes=("x", "y"))(events)
    torch.manual_seed(3)  # the same crop
    rescaled = SpatioTemporalCropFlip(min_scale=0.5, flip_p=0.0, axes=("x", "y"), rescale=True)(events)
    assert len(rescaled) == len(literal) < len(events)  # every kept event stays
    for axis in "xy":
        lo, hi = int(events[axis].min()), int(events[axis].max())
        length = int(literal[axis].max())  # eq. 7: the crop sits at [0, D_B - D_A] ...
        assert length < 0.9 * (hi - lo)
        expected = lo + np.round(literal[axis] * (hi - lo) / length)  # ... rescale: back onto [lo, hi]
        assert np.array_equal(rescaled[axis], expected.astype(np.int64))
        assert rescaled[axis].min() == lo and rescaled[axis].max() == hi
    assert np.array_equal(rescaled["t"], literal["t"])


def test_stcf_keep_bin_duration_frames_the_crop_with_the_recording_bin_width():
    from snn_repro.data.event_dataset import FramedEvents
    from snn_repro.data.events import EventSource, make_events
    from tests.data.conftest import dataset_cfg

    n, T = 10_000, 10
    events = make_events(np.zeros(n), np.zeros(n), np.arange(n) * 100 + 5_000, np.zeros(n))  # uniform in time
    source = EventSource(lambda i: events.copy(), np.zeros(1, np.int64), (1, 1, 1), "all")
    cfg = dataset_cfg("uniform", "/nonexistent", input_shape=[1], T=T, framing=("time_bins", T),
                      split=("official", 0, 0))
    per_bin = n / T
    for time in ("stretch", "keep_bin_duration"):
        stcf = SpatioTemporalCropFlip(min_scale=0.3, flip_p=0.0, axes=("t",), time=time)
        torch.manual_seed(3)
        kept = len(SpatioTemporalCropFlip(min_scale=0.3, flip_p=0.0, axes=("t",))(events))
        assert kept < 0.8 * n
        ds = FramedEvents(cfg, "train", source, np.array([0]), event_transform=tonic_compose(stcf))
        torch.manual_seed(3)  # the same crop
        frames, _ = ds[0]
        counts = frames.reshape(T).numpy()
        assert counts.sum() == kept
        if time == "stretch":  # the crop spread over every bin: fewer events per bin than a test frame
            assert counts.min() > 0 and counts.max() < 0.8 * per_bin
        else:  # bins as wide as the recording's: the crop fills the first bins at the test frames' density
            full = counts[counts > 0]
            assert abs(len(full) - kept / per_bin) <= 1 and np.all(np.abs(full[:-1] - per_bin) <= 1)


def tonic_compose(*transforms):
    import tonic

    return tonic.transforms.Compose(list(transforms))


def test_stcf_rejects_an_unknown_time_mode():
    with pytest.raises(ValueError, match="time must be one of"):
        SpatioTemporalCropFlip(time="squeeze")


def test_random_erasing_sets_one_rectangle_to_the_value_per_channel():
    from snn_repro.augment.frames import RandomErasing

    erase = RandomErasing(p=1.0, value=(0.25, 0.5, 0.75))
    x = torch.rand(3, 32, 32) + 2.0  # no pixel equals a fill value
    for seed in range(20):
        torch.manual_seed(seed)
        out = erase(x)
        changed = (out != x).any(0)
        rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert changed.sum() == h * w  # one rectangle
        assert rows.max() - rows.min() + 1 == h and cols.max() - cols.min() + 1 == w
        assert 0.02 * 1024 * 0.5 <= h * w <= 0.33 * 1024 * 1.5  # area fraction in scale (rounding of the sides)
        for c, v in enumerate((0.25, 0.5, 0.75)):
            assert torch.all(out[c][changed] == v)
        assert torch.equal(out[:, ~changed], x[:, ~changed])
    assert torch.equal(RandomErasing(p=0.0)(x), x)


@pytest.mark.parametrize("degrees", [0.0, 7.3, -15.0, 33.0, 90.0, 180.0])
def test_rotation_samples_each_plane_as_grid_sample_does(degrees):
    """The gather of one sampled map of pixel numbers equals grid_sample (nearest, zeros) of every plane, in float
    and on integer counts."""
    x = torch.rand(5, 2, 13, 17)
    a = np.radians(degrees)
    theta = torch.tensor([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0]], dtype=torch.float32)
    grid = torch.nn.functional.affine_grid(theta[None], [1, 10, 13, 17], align_corners=False)
    want = torch.nn.functional.grid_sample(x.reshape(1, 10, 13, 17), grid, mode="nearest", padding_mode="zeros",
                                           align_corners=False).reshape(x.shape)
    assert torch.equal(rotate(x, degrees), want)
    counts = (x * 300).to(torch.int16)
    assert torch.equal(rotate(counts, degrees), rotate(counts.float(), degrees).to(torch.int16))


def _bin_ratios(axes, time, draws=40, n=20_000, T=10):
    """Per draw: the mean event count of the augmented frames' fully covered bins / a test bin's, on events spread
    uniformly over a 128x128 sensor and 1 s."""
    from snn_repro.augment.stcf import SpatioTemporalCropFlip
    from snn_repro.data.events import make_events
    from snn_repro.data.framing import frame_events

    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    aug = SpatioTemporalCropFlip(min_scale=0.75, flip_p=0.5, axes=axes, rescale=True, time=time)
    out = []
    for _ in range(draws):
        ev = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), np.sort(rng.integers(0, 1_000_000, n)),
                         rng.integers(0, 2, n))
        test = frame_events(ev, (128, 128, 2), T, "time_bins", T).sum(axis=(1, 2, 3))
        span = (0, int(ev["t"].max()) - int(ev["t"].min())) if time == "keep_bin_duration" else None
        got = frame_events(aug(ev, g), (128, 128, 2), T, "time_bins", T, span=span).sum(axis=(1, 2, 3))
        filled = np.flatnonzero(got)
        inner = filled[1:-1] if time == "keep_bin_duration" else filled  # the crop's edge bins are partly covered
        out.append(got[inner].mean() / test.mean())
    return np.array(out)


def test_stcf_bins_hold_the_spatial_crops_share_of_a_test_bins_events():
    """keep_bin_duration keeps the time axis from changing a bin's count, but the x / y crop drops events: a bin
    holds s_x * s_y of a test bin's (E = 0.875^2 = 0.77 at min_scale 0.75, range 0.56-1), as stcf.py now says.
    Without a spatial crop the counts match; the literal stretch reading gives s_x * s_y * s_t (E = 0.67)."""
    kept = _bin_ratios(("x", "y", "t"), "keep_bin_duration")
    assert 0.72 < kept.mean() < 0.82 and kept.min() > 0.5 and kept.max() < 1.05
    time_only = _bin_ratios(("t",), "keep_bin_duration", draws=10)
    assert np.all(np.abs(time_only - 1.0) < 0.06)
    stretched = _bin_ratios(("x", "y", "t"), "stretch")
    assert 0.61 < stretched.mean() < 0.73
