"""Readers: the files of a dataset as distributed, read into labels and samples (uint8 images,
image paths, tables), with errors that name the file and the fix. No splitting, no loaders, no
data module: a data module's ``load_data`` calls its reader and the base does the rest (as
torchgeo keeps ``datasets/`` apart from ``datamodules/``)."""
