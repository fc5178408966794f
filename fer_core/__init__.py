"""fer_core: attention-based facial-expression recognition (DDAMFN, ResNet+DDA, their fusion)."""
from .factory import create_model  # noqa: F401
from .models import list_models  # noqa: F401
from .weights import WeightsError, load_pretrained, load_weights, save_pretrained  # noqa: F401

__version__ = "0.1.0"
