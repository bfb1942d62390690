"""LightningDataModule over the registered dataset loaders: train, optional held-out validation, test.

Evaluation during fit runs on the test split under the name ``test_during_fit`` (what the papers' codes do: their
"best accuracy" is the highest test accuracy over epochs) and, when ``dataset.split.val_fraction`` > 0, first on a
validation split carved from the training set (stratified per class, seed ``split.seed``, no augmentation) under
the name ``val``. Only then is there a held-out number: the checkpoint chosen on ``val/acc``, tested once.

Training data is resumable and reproducible: the order of epoch ``e`` is a permutation drawn from (seed, e) alone,
and the random augmentation of a sample is seeded from (seed, e, index), so neither depends on the global RNG, on
the number of workers, or on whether the run was interrupted. After a restart mid-epoch the sampler skips the
batches the checkpoint had already trained on (see ``snn_repro.callbacks.resume``).

Feeding a GPU: ``dataset.num_workers: -1`` takes the loader processes from the CPUs available to each rank
(``default_workers``), batches are pinned when the trainer runs on CUDA, and event frames travel as integer counts
that ``SNNModule.as_float`` casts to float32 on the device.
"""
from __future__ import annotations

import os
import random

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, default_collate

from snn_repro.augment import Compose
from snn_repro.data import splits
from snn_repro.data.registry import get_loader
from snn_repro.distributed import per_rank_batch


def _compose(transforms):
    """The configured transforms in order, or None when there are none."""
    transforms = [instantiate(t) for t in transforms or []]
    return Compose(transforms) if transforms else None


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (distinct tuples give unrelated seeds)."""
    return int(np.random.SeedSequence([v & 0xFFFFFFFF for v in values]).generate_state(2, np.uint64)[0] >> 1)


class EpochSampler(DistributedSampler):
    """Shuffled indices of epoch ``e`` from a generator seeded by (seed, e); yields ``(index, epoch)`` pairs.

    With ``num_replicas`` > 1 (DDP) each rank takes every num_replicas-th index of the same order (padded to equal
    length, as torch's DistributedSampler does): with per-rank batches of ``global batch / num_replicas``, the ranks'
    k-th batches together are the k-th global batch of the one-process order. Being a DistributedSampler,
    Lightning leaves it in place. ``resume_at(epoch, skip)`` drops the first ``skip`` indices of that epoch's order
    (the samples a checkpoint already trained on, counted over all ranks, so a checkpoint resumes on any number of
    ranks); it holds until ``set_epoch`` moves to another epoch.
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True, num_replicas: int = 1, rank: int = 0):
        # not DistributedSampler.__init__: that needs an initialised process group even for one process
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self._resume is not None and self._resume[0] != self.epoch:
            self._resume = None

    def resume_at(self, epoch: int, skip: int) -> None:
        self._resume = (int(epoch), int(skip))

    def order(self, epoch: int, skip: int = 0) -> list[int]:
        """This rank's indices for ``epoch``, after the first ``skip`` of the epoch's (all ranks') order."""
        if self.shuffle:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch, 0x5EED))
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        order = order[skip:]
        if self.num_replicas > 1:
            order += order[: (-len(order)) % self.num_replicas]
            order = order[self.rank::self.num_replicas]
        return order

    def __iter__(self):
        skip = self._resume[1] if self._resume is not None and self._resume[0] == self.epoch else 0
        for i in self.order(self.epoch, skip):
            yield (i, self.epoch)

    def __len__(self) -> int:
        return -(-self.size // self.num_replicas)


class ShardSampler(DistributedSampler):
    """Evaluation order: indices 0..size-1, rank r taking every num_replicas-th one from r, without padding, so that
    summed over ranks every sample is scored exactly once (torch's DistributedSampler repeats samples to give all
    ranks the same length; evaluation needs no equal lengths here, see ``conf/trainer/ddp.yaml``)."""

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0):
        self.size, self.num_replicas, self.rank = size, num_replicas, rank

    def __iter__(self):
        return iter(range(self.rank, self.size, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.num_replicas))


class SeededSamples(Dataset):
    """Indexed by ``(index, epoch)``: runs the wrapped dataset's random transforms under a per-sample seed.

    Where every random transform takes a generator (the project's, see ``snn_repro.augment``), the sample gets its
    own ``torch.Generator`` seeded with that seed, which draws exactly what torch's global generator would after
    ``manual_seed(seed)``. Otherwise (a transform that draws from the global torch / numpy / random states, e.g.
    tonic's) those states are seeded for the sample, and saved and put back around it. Either way loading data
    never moves the RNG that the training step (e.g. a Poisson encoder) draws from.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed
        base, self.index_map = dataset, None
        if isinstance(dataset, Subset):  # the train part left after holding out a validation split
            base, self.index_map = dataset.dataset, list(dataset.indices)
        # the per-sample generator path: a dataset whose ``item(i, generator)`` hands it to all its random transforms
        self.generator_source = base if getattr(base, "takes_generator", False) and hasattr(base, "item") else None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, epoch = key
        seed = _mix(self.seed, epoch, index)
        if self.generator_source is not None:
            i = index if self.index_map is None else self.index_map[index]
            return self.generator_source.item(i, torch.Generator().manual_seed(seed))
        return self.global_seeded(index, seed)

    def global_seeded(self, index: int, seed: int):
        """Sample ``index`` with the global generators seeded by ``seed`` (and their states put back after)."""
        t, n, p = torch.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds CUDA, at ~1 ms a call
            np.random.seed(seed % 2**32)
            random.seed(seed)
            return self.dataset[index]
        finally:
            torch.set_rng_state(t)
            np.random.set_state(n)
            random.setstate(p)


AUTO_WORKERS_MAX = 8  # beyond this a loader of cached frames rarely gets faster, and each worker holds memory


def cpus_per_rank(ranks_on_node: int) -> int:
    """CPUs one training process may use: SLURM's per-task allocation (SLURM_CPUS_PER_TASK: one task per rank)
    where set, else the CPUs this process may run on (its affinity mask) shared by the ranks on this node."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return min(cpus, int(slurm))
    return max(1, cpus // max(1, ranks_on_node))


def default_workers(ranks_on_node: int) -> int:
    """``dataset.num_workers: -1``: one CPU for the training process, the rest (at most AUTO_WORKERS_MAX) load."""
    return min(AUTO_WORKERS_MAX, cpus_per_rank(ranks_on_node) - 1)


def collate_samples(batch):
    """``default_collate``, after promoting the samples' frames to one dtype: event counts come as the smallest
    integer type that holds each sample's counts (uint8, int16, int32), so one batch may mix them."""
    if batch and isinstance(batch[0], (tuple, list)) and isinstance(batch[0][0], torch.Tensor):
        dtypes = {sample[0].dtype for sample in batch}
        if len(dtypes) > 1:
            dtype = dtypes.pop()
            for d in dtypes:
                dtype = torch.promote_types(dtype, d)
            batch = [(sample[0].to(dtype), *sample[1:]) for sample in batch]
    return default_collate(batch)


def labels_of(ds: Dataset) -> np.ndarray:
    """The class of every sample of a loader's dataset (its ``labels``), without reading the samples."""
    labels = getattr(ds, "labels", None)
    if labels is None:
        raise TypeError(f"{type(ds).__name__} has no `labels`: dataset.split.val_fraction needs the class of every "
                        f"training sample to hold out a stratified validation split")
    return np.asarray(labels)


class SNNDataModule(L.LightningDataModule):
    def __init__(self, dataset: DictConfig, augmentation: DictConfig, seed: int = 0):
        super().__init__()
        self.cfg, self.aug, self.seed = dataset, augmentation, seed
        self.train_set = self.val_set = self.test_set = None
        self.train_sampler: EpochSampler | None = None

    @property
    def val_fraction(self) -> float:
        return float(self.cfg.split.get("val_fraction", 0.0) or 0.0)

    @property
    def eval_names(self) -> tuple[str, ...]:
        """Metric prefix of each validation dataloader, in order."""
        return ("val", "test_during_fit") if self.val_set is not None else ("test_during_fit",)

    @property
    def selection_metric(self) -> str:
        """What the best checkpoint is chosen on: the held-out split if there is one, else test (paper protocol)."""
        return "val/acc" if self.val_set is not None else "test_during_fit/acc"

    def split_summary(self) -> dict:
        """The split as used, for results.json: settings and sample counts."""
        split = self.cfg.split
        return {"mode": str(split.mode), "test_fraction": float(split.test_fraction), "seed": int(split.seed),
                "val_fraction": self.val_fraction, "held_out": self.val_set is not None,
                "val_from": "train split, stratified per class, seed split.seed" if self.val_set is not None else None,
                "train": len(self.train_set), "val": len(self.val_set) if self.val_set is not None else 0,
                "test": len(self.test_set), "selection_metric": self.selection_metric}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.cfg.get("synthetic", False):
            from snn_repro.data.synthetic import load_synthetic as load
        else:
            load = get_loader(self.cfg.name)
        train = load(self.cfg, "train", event_transform=_compose(self.aug.event),
                     frame_transform=_compose(self.aug.frame))
        self.test_set = load(self.cfg, "test")
        if self.val_fraction != 0:
            train_idx, val_idx = splits.validation_split(labels_of(train), self.val_fraction, int(self.cfg.split.seed))
            # the validation samples as the test set sees its own: the train split read again without augmentation
            self.val_set = Subset(load(self.cfg, "train"), val_idx.tolist())
            train = Subset(train, train_idx.tolist())
        self.train_set = train
        self.train_sampler = EpochSampler(len(self.train_set), self.seed)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    @property
    def num_workers(self) -> int:
        """``dataset.num_workers``, or where it is -1 (auto) ``default_workers`` (0 for synthetic data, which is
        made in memory faster than a worker hands it over)."""
        workers = int(self.cfg.get("num_workers", 0))
        if workers >= 0:
            return workers
        if self.cfg.get("synthetic", False):
            return 0
        trainer = self.trainer
        return default_workers(getattr(trainer, "num_devices", 1) if trainer is not None else 1)

    @property
    def pin_memory(self) -> bool:
        """Page-locked batches when training on a CUDA device: the host-to-device copy runs asynchronously."""
        trainer = self.trainer
        try:
            return trainer is not None and trainer.strategy.root_device.type == "cuda"
        except (AttributeError, RuntimeError):
            return False

    def _loader(self, ds, **kwargs):
        workers = self.num_workers
        # dataset.batch_size is the global batch: each of the world_size ranks loads its share
        batch_size = per_rank_batch(int(self.cfg.batch_size), self._world()[0])
        # an own generator: creating a loader iterator must not draw from the global RNG
        return DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_samples,
                          pin_memory=self.pin_memory, persistent_workers=workers > 0, drop_last=False,
                          generator=torch.Generator().manual_seed(self.seed), **kwargs)

    def train_dataloader(self):
        # DDP: this rank's share of the same order
        self.train_sampler.num_replicas, self.train_sampler.rank = self._world()
        return self._loader(SeededSamples(self.train_set, self.seed), sampler=self.train_sampler)

    def split_dataloader(self, split: str):
        """The loader of one evaluation split, "val" (the held-out part of train) or "test"."""
        ds = {"val": self.val_set, "test": self.test_set}[split]
        if ds is None:
            raise ValueError(f"no {split} split: dataset.split.val_fraction is 0 (set it > 0 to hold out a validation "
                             f"split from train)")
        return self._loader(ds, shuffle=False)

    def val_dataloader(self):
        sets = {"val": self.val_set, "test_during_fit": self.test_set}
        # unpadded shards under DDP: every sample is scored once, summed over the ranks
        return [self._loader(sets[name], sampler=ShardSampler(len(sets[name]), *self._world()))
                for name in self.eval_names]

    def test_dataloader(self):
        return self._loader(self.test_set, sampler=ShardSampler(len(self.test_set), *self._world()))
