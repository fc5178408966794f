"""Dataset readers, the prepared cache and GPU augmentation."""
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
from .root import DATA_ENV, data_root, dataset_root  # noqa: F401
