"""Georeferenced rasters (rasterio, the extra `segdeploy[geo]`): GeoTIFF/BigTIFF orthomosaics read by
windows and class maps written as tiled, compressed GeoTIFFs with the input's CRS and transform (`raster`),
per-class and per-field coverage of a class map (`coverage`), the fields that split it (`fields`), weed
patches as polygons (`patches`) and the ground area of a pixel (`pixel_area`)."""
