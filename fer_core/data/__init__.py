"""Dataset readers, where the data lives (``FER_DATA``), its layout from the official files, the prepared cache and
GPU augmentation."""
from .cache import load_cache, save_cache  # noqa: F401
from .datasets import (  # noqa: F401
                       DatasetError,
                       ImageDataset,
                       read_affectnet,
                       read_dataset,
                       read_fer2013_csv,
                       read_fer2013_folders,
                       read_ferplus,
                       read_image_folder,
                       read_rafdb,
)
from .root import DATA_ENV, DataNotFound, data_root, dataset_root, missing_message, require, resolve_data  # noqa: F401
