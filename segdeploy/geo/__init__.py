"""Georeferenced rasters through rasterio (the extra segdeploy[geo]): GeoTIFF/BigTIFF orthomosaics read by
windows, class maps written as tiled, compressed GeoTIFFs with the input's CRS and transform."""
