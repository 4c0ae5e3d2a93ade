"""Device configuration, identity and provisioning: how a Pi becomes an E-Warung appliance."""
