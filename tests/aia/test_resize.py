"""AIA rows resize events by area (every event kept), not by nearest sampling (which drops most pixels)."""
import pytest

from snn_repro.tables.catalog import job_args
from tests.conftest import compose_config


@pytest.mark.parametrize("experiment", ["aia/cifar10dvs_aia_cached", "aia/cifar10dvs_aia", "aia/ncaltech101_aia",
                                        "aia/ncars_aia_cached", "aia/ncaltech101_lif"])
def test_aia_rows_use_area_resize(experiment):
    assert compose_config(job_args(experiment)).dataset.spatial.mode == "area"
