"""The provider agent: runs beside a provider's engine and pulls work over outbound HTTP."""
