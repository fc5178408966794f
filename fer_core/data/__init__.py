"""Dataset readers, the prepared cache and GPU augmentation."""
from .cache import load_cache, save_cache  # noqa: F401
from .datasets import (DatasetError, ImageDataset, read_affectnet, read_dataset, read_fer2013_csv,  # noqa: F401
                       read_fer2013_folders, read_ferplus, read_image_folder, read_rafdb)
