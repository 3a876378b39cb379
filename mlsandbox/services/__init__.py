"""Small processes the stacks run beside the components: the alert receiver, Grafana's password."""
