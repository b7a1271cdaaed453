# Convenience targets; everything they run is also a documented command.

GUEST_DIR ?= examples/auth_service
UNIKERNELS := $(wildcard examples/unikernels/*/init)

.PHONY: guest unikernels
# The test guest (Linux PV kernel + busybox initramfs serving the auth API), from Debian's packages.
guest:
	python3 examples/auth_service/build_guest.py $(GUEST_DIR)

# The stand-ins for real unikernels (hello, crash, static_web), each built beside its .xl file.
unikernels:
	for init in $(UNIKERNELS); do \
	    dir=$$(dirname $$init); \
	    python3 examples/auth_service/build_guest.py $$dir --unikernel $$dir || exit 1; \
	done
