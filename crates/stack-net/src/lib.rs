//! Per-stack bridges, veth pairs, IPAM, service-name DNS and published ports over netlink
