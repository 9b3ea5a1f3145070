# A stand-in for the official nginx image on hosts that cannot reach a container registry:
# Debian's nginx on the same base image as the service (see scripts/build-base-image.sh).
#
#   docker build -f deploy/nginx.Dockerfile \
#       --build-arg BASE_IMAGE=envi-mt/python:3.11-slim-local -t envi-mt/nginx:local deploy/
#   MT_LB_IMAGE=envi-mt/nginx:local docker compose up -d
#
# The configuration comes from deploy/nginx.conf, bind-mounted by compose.yaml; a copy is
# baked in as well so the image also runs on its own.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
COPY nginx.conf /etc/nginx/nginx.conf
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
