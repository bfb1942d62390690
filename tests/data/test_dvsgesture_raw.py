"""IBM's raw DVS-Gesture release (AEDAT 3.1 + csv labels), read from files written here in that format."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.data import fixtures as fx
from snn_repro.data.dvsgesture_raw import read_aedat31, read_labels
from snn_repro.data.errors import CorruptFile
from snn_repro.data.events import make_events
from snn_repro.data.framing import frame_events
from snn_repro.data.registry import get_loader
from tests.data.conftest import dataset_cfg

TRIALS = {"train": ["user01_fluorescent", "user02_led"], "test": ["user24_natural"]}


def cfg_for(root, release):
    return dataset_cfg("dvsgesture", root, num_classes=11, input_shape=[2, 64, 64], T=4, framing=("event_count", 4),
                       spatial=("resize", 64), options={"release": release})


def test_aedat31_packets_overflow_and_invalid_events(tmp_path, rng):
    t = np.sort(rng.integers(2**31 - 5_000, 2**31 + 5_000, 300))
    ev = make_events(rng.integers(0, 128, 300), rng.integers(0, 128, 300), t, rng.integers(0, 2, 300))
    path = str(tmp_path / "rec.aedat")
    fx.write_aedat31(path, ev, [64, 1, 100], overflow_from=2**31, invalid_every=5)
    got = read_aedat31(path)
    assert fx.same_events(got, ev) and got["t"].max() >= 2**31
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[:-3])
    with pytest.raises(CorruptFile, match="truncated"):
        read_aedat31(path)


def test_raw_release_gives_every_labelled_segment(tmp_path, rng):
    truth = fx.write_dvsgesture_raw(str(tmp_path), rng, TRIALS, gestures=3, n_events=150)
    for release in ("raw", "auto"):  # auto: the raw release is there, so it is used
        cfg = cfg_for(tmp_path, release)
        for split, n in (("train", 6), ("test", 3)):
            ds = get_loader("dvsgesture")(cfg, split)
            assert len(ds) == n == len(truth[split])
            for k, (ev, label) in enumerate(truth[split]):
                frames, y = ds[k]
                assert y == label
                want = frame_events(ev, (128, 128, 2), 4, "event_count", 4, "resize", 64)
                assert np.array_equal(frames.numpy(), want)
                assert fx.same_events(ds.source.read(int(ds.indices[k])), ev)  # the events between gestures are not


def test_auto_falls_back_to_the_npy_release_and_bad_release_fails(tmp_path, rng):
    fx.write_dvsgesture(str(tmp_path), rng, {"train": ["user01_led"], "test": ["user24_led"]}, 50)
    assert len(get_loader("dvsgesture")(cfg_for(tmp_path, "auto"), "train")) == 11
    with pytest.raises(ValueError, match="options.release"):
        get_loader("dvsgesture")(cfg_for(tmp_path, "aedat"), "train")
    from snn_repro.data.errors import DatasetNotFound
    with pytest.raises(DatasetNotFound, match="trials_to_train"):
        get_loader("dvsgesture")(cfg_for(tmp_path, "raw"), "train")


def test_label_csv_must_hold_classes_1_to_11(tmp_path):
    path = tmp_path / "x_labels.csv"
    path.write_text("class,startTime_usec,endTime_usec\n12,0,10\n")
    with pytest.raises(CorruptFile, match="class"):
        read_labels(str(path))
    path.write_text("class,startTime_usec,endTime_usec\n3,100,900\n11,900,1000\n")
    assert read_labels(str(path)) == [(2, 100, 900), (10, 900, 1000)]


def test_dataset_config_defaults_to_auto():
    from snn_repro.results import ROOT

    assert OmegaConf.load(ROOT / "conf/dataset/dvsgesture.yaml").options.release == "auto"
