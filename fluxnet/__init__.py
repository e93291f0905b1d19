"""Eddy-covariance flux data: readers, QC, daily aggregation and site metadata.

Reads flux files as downloaded (CSV, Parquet, Feather; gzip/bz2/xz; ZIP) of
the FLUXNET2015/ONEFlux (ICOS L2, Warm Winter), REddyProc, AmeriFlux BASE and
European Fluxes Database families. Pure pandas/numpy/pyarrow; never imports torch.
"""

from fluxnet.aggregate import (
    DEFAULT_MIN_DAY_COVERAGE,
    DEFAULT_QC_FLAG_MAX,
    UMOL_S_TO_GC_DAY,
    aggregate_to_daily,
)
from fluxnet.errors import FluxDataError, FluxQCWarning
from fluxnet.families import FAMILIES
from fluxnet.plausibility import check_plausibility
from fluxnet.read import GPP_METHODS, QC_MISSING, FluxFileFormat, detect_format, read_flux
from fluxnet.sites import read_bif, read_site_infos, read_sites_csv, split_path_list
from fluxnet.table import DEFAULT_QC_MIN, TIDY_COLUMNS, UNITS, qc_pass
from fluxnet.write import write_fluxnet_dd

__all__ = [
    "DEFAULT_MIN_DAY_COVERAGE",
    "DEFAULT_QC_FLAG_MAX",
    "DEFAULT_QC_MIN",
    "FAMILIES",
    "GPP_METHODS",
    "QC_MISSING",
    "TIDY_COLUMNS",
    "UMOL_S_TO_GC_DAY",
    "UNITS",
    "FluxDataError",
    "FluxFileFormat",
    "FluxQCWarning",
    "aggregate_to_daily",
    "check_plausibility",
    "detect_format",
    "qc_pass",
    "read_bif",
    "read_flux",
    "read_site_infos",
    "read_sites_csv",
    "split_path_list",
    "write_fluxnet_dd",
]
