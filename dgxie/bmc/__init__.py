"""BMC protocol clients (Redfish, IPMI). Never touches the database."""
