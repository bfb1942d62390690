"""The training order is a function of (seed, epoch) alone; a restart skips exactly the batches already done."""
import numpy as np
import torch
from omegaconf import OmegaConf

from tests.data import fixtures as fx
from snn_repro.datamodule import EpochSampler, SeededSamples, SNNDataModule
from snn_repro.results import ROOT
from tests.data.conftest import dataset_cfg


def test_order_depends_on_seed_and_epoch_only():
    a, b = EpochSampler(50, seed=3), EpochSampler(50, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(i for i, _ in a) == list(range(50))
    assert all(e == 2 for _, e in a)
    b.set_epoch(3)
    assert [i for i, _ in a] != [i for i, _ in b]
    assert [i for i, _ in EpochSampler(50, seed=4)] != [i for i, _ in EpochSampler(50, seed=3)]


def test_resume_skips_the_done_samples_of_that_epoch_only():
    full = EpochSampler(20, seed=0)
    full.set_epoch(1)
    resumed = EpochSampler(20, seed=0)
    resumed.resume_at(1, 8)
    resumed.set_epoch(1)
    assert list(resumed) == list(full)[8:]
    assert list(resumed) == list(full)[8:]  # a second iterator of the same epoch (Lightning makes two) too
    resumed.set_epoch(2)
    full.set_epoch(2)
    assert list(resumed) == list(full)


def test_ranks_share_one_order_without_overlap():
    ranks = [EpochSampler(10, seed=1, num_replicas=3, rank=r) for r in range(3)]
    parts = [[i for i, _ in s] for s in ranks]
    assert [len(p) for p in parts] == [4, 4, 4] and all(len(s) == 4 for s in ranks)
    assert set(sum(parts, [])) == set(range(10))
    whole = [i for i, _ in EpochSampler(10, seed=1)]
    assert parts[0][:3] == whole[0:9:3]


class _Noisy(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.rand(3)  # a random augmentation drawing from the global RNG


def test_sample_randomness_is_seeded_per_sample_and_leaves_the_global_rng_alone():
    ds = SeededSamples(_Noisy(), seed=7)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    x = ds[(2, 5)]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(ds[(2, 5)], x)
    assert not torch.equal(ds[(2, 6)], x) and not torch.equal(ds[(3, 5)], x)


def test_augmented_batches_do_not_depend_on_the_number_of_workers(tmp_path):
    """STCF and the frame augmentation draw from per-sample generators: 0 and 2 worker processes load the same."""
    fx.write_cifar10dvs(str(tmp_path / "data"), np.random.default_rng(0), per_class=2, n_events=400)
    augmentation = OmegaConf.load(ROOT / "conf" / "augmentation" / "stcf_ref_frames.yaml")
    batches = {}
    for workers in (0, 2):
        cfg = dataset_cfg("cifar10dvs", tmp_path / "data", tmp_path / "cache", input_shape=[2, 42, 42], T=8,
                          framing=("time_bins", 8), spatial=("sum_pool", 42), split=("random_per_class", 0.5, 0),
                          cache=True)
        cfg.num_workers = workers
        data = SNNDataModule(cfg, augmentation, seed=11)
        data.setup()
        data.train_sampler.set_epoch(2)
        batches[workers] = [(x, y) for x, y in data.train_dataloader()]
    assert len(batches[0]) == len(batches[2]) > 1
    for (x0, y0), (x2, y2) in zip(batches[0], batches[2]):
        assert x0.dtype == torch.uint8 and torch.equal(x0, x2) and torch.equal(y0, y2)
