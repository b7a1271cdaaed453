# Convenience targets; everything they run is also a documented command.

GUEST_DIR ?= examples/auth_service
UNIKERNELS := $(wildcard examples/unikernels/*/init)

.PHONY: guest unikernels testkernel
# xenlab's own test kernel (PVH and PV), freestanding C and assembly, with Debian's gcc and binutils.
testkernel:
	$(MAKE) -C examples/unikernels/testkernel

# The test guest (Linux PV kernel + busybox initramfs serving the auth API), from Debian's packages.
guest:
	python3 examples/auth_service/build_guest.py $(GUEST_DIR)

# The Linux stand-ins for real unikernels (hello, static_web), each built beside its .xl file.
unikernels:
	for init in $(UNIKERNELS); do \
	    dir=$$(dirname $$init); \
	    python3 examples/auth_service/build_guest.py $$dir --unikernel $$dir || exit 1; \
	done
