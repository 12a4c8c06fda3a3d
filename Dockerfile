# Ray's image with buckle installed: the image the KubeRay example profile names
# (cluster/profiles/kuberay-example.yaml), so a RayJob's `buckle ...` entrypoint and
# its Ray Train workers find buckle in every pod. Build it, push it where the
# cluster pulls from, and set the profile's kuberay.image to the pushed name:
#   docker build -t buckle:0.1.0-ray2.60.0-py311-gpu .
# The base must carry the Ray version the RayJob asks for (kuberay.ray_version).
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu
FROM ${RAY_IMAGE}

# pinned to the base's own Ray, so installing buckle's extras never moves it
ARG RAY_VERSION=2.60.0
ENV PIP_NO_CACHE_DIR=1 TOKENIZERS_PARALLELISM=false

WORKDIR /home/ray/buckle
COPY --chown=ray:users . .
# torch first: DeepSpeed (a source distribution) then builds against it; its ops compile
# on first use (JIT), which needs the CUDA toolkit of the -gpu base
RUN pip install torch \
 && pip install ".[train,eval,ray]" "ray[data,default]==${RAY_VERSION}" \
 && buckle --help > /dev/null
WORKDIR /home/ray
