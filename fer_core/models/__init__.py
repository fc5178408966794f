"""Model families and the registry. Importing this package registers every model."""
from . import (  # noqa: F401,E402  (registration side effects)
    ddamfn,
    fusion,  # noqa: F401,E402
    resnet_dda,
)
from .ddamfn import DDAMFN, attention_loss  # noqa: F401,E402
from .fusion import FusionNet  # noqa: F401,E402
from .registry import create_model, get_entry, list_models, register_model  # noqa: F401
from .resnet_dda import ResNetDDA  # noqa: F401,E402
