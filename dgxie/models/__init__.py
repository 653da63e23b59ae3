"""ORM models, one module per aggregate. Importing this package registers every table."""

from dgxie.models.event import Event
from dgxie.models.image import Image
from dgxie.models.lease import DhcpLease
from dgxie.models.node import Interface, Node
from dgxie.models.profile import Profile
from dgxie.models.token import ApiToken

__all__ = ["ApiToken", "DhcpLease", "Event", "Image", "Interface", "Node", "Profile"]
