"""samia: Segment Anything in Medical Imaging, Assessed and Adapted."""

from samia.errors import SamiaError
from samia.types import Image2D, Prompt, Volume

__version__ = "0.1.0"

__all__ = ["Image2D", "Prompt", "SamiaError", "Volume", "__version__"]
