"""Model families and the registry. Importing this package registers every model."""
from .registry import create_model, get_entry, list_models, register_model  # noqa: F401
from . import ddamfn, resnet_dda  # noqa: F401,E402  (registration side effects)
from .ddamfn import DDAMFN, attention_loss  # noqa: F401,E402
from .resnet_dda import ResNetDDA  # noqa: F401,E402

from . import fusion  # noqa: F401,E402
from .fusion import FusionNet  # noqa: F401,E402
