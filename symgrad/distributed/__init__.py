"""Dask arrays: a loss split over chunks of rows and combined exactly.
"""
