# Container images (Dockerfile.producer, Dockerfile.consumer), built here with buildah on a local
# debootstrap base. See docs/images.md.
.PHONY: images base-image images-test images-clean

base-image: setup-system-images ## local Debian bookworm + python3 base images via debootstrap (cached in buildah storage and .cache/images)
	@bash scripts/images/build-base.sh

images: base-image ## build localhost/homesec-producer and localhost/homesec-consumer with buildah (layer-cached)
	@bash scripts/images/build.sh

images-test: setup-python ## build the images, then run their tests (tests/images)
	$(PY) -m pytest -q tests/images $(PYTEST_ARGS)

images-clean: ## remove the project's images, the build cache layers and .cache/images
	-buildah rmi -f $$(buildah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/homesec-') >/dev/null 2>&1
	-buildah rmi --prune >/dev/null 2>&1
	rm -rf .cache/images
