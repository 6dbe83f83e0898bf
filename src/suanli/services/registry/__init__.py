"""Registry context: providers, sites, pools, identifiers, delegations, search, calibration."""
