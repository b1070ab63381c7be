"""The WMS adapters: ROPOS's HTTP client for the warehouse system, and an emulator of one."""
