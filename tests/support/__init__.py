"""What the tests share: fixtures' building blocks, real peers started on loopback or in namespaces
the test made (docker-registry, sushy, ipmi_sim, slurmctld, dhclient...), and the few stand-ins
where no packaged peer exists (each says so in its docstring). One module per area."""
