"""Eddy-covariance flux data: FLUXNET2015/ONEFlux, ICOS and AmeriFlux readers, QC,
daily aggregation and site metadata. Pure pandas/numpy; never imports torch."""
