# Convenience targets; everything they run is also a documented command.

GUEST_DIR ?= examples/auth_service

.PHONY: guest
# The test guest (Linux PV kernel + busybox initramfs serving the auth API), from Debian's packages.
guest:
	python3 examples/auth_service/build_guest.py $(GUEST_DIR)
