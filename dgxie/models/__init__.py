"""ORM models, one module per aggregate. Importing this package registers every table."""

from dgxie.models.event import Event
from dgxie.models.firmware import BmcEndpoint, FirmwareReading, FirmwareScan, FirmwareUpdate, FirmwareUpdateNode
from dgxie.models.image import Image
from dgxie.models.job import Instance, Job, Lease
from dgxie.models.lease import DhcpLease, DhcpPeer
from dgxie.models.mirror import MirrorJob, MirrorSnapshot, MirrorState
from dgxie.models.node import Interface, Node, NodeTag
from dgxie.models.profile import Profile
from dgxie.models.secret import Secret
from dgxie.models.token import ApiToken
from dgxie.models.web_session import WebSessionRow

__all__ = ["ApiToken", "BmcEndpoint", "DhcpLease", "DhcpPeer", "Event", "FirmwareReading", "FirmwareScan",
           "FirmwareUpdate", "FirmwareUpdateNode", "Image", "Instance", "Interface", "Job", "Lease", "MirrorJob",
           "MirrorSnapshot", "MirrorState", "Node", "NodeTag", "Profile", "Secret", "WebSessionRow"]
