"""Georeferenced rasters (rasterio, the extra `segdeploy[geo]`): per-class and per-field coverage of a
class map (`coverage`), the fields that split it (`fields`), weed patches as polygons (`patches`) and
the ground area of a pixel (`pixel_area`)."""
