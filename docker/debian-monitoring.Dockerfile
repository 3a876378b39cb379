# Prometheus and Alertmanager from Debian's packages, for machines that cannot pull the official images
# (compose.local-images.yaml builds them; users with a registry run prom/prometheus and prom/alertmanager).
# They take the same arguments as the official images: compose.yaml's commands, mounts and health checks
# work unchanged. Build one with --target prometheus or --target alertmanager.
#
# BASE_IMAGE: a Debian bookworm image (mlsandbox/debian-base:bookworm, made by debootstrap).
ARG BASE_IMAGE=mlsandbox/debian-base:bookworm

FROM ${BASE_IMAGE} AS apt-base
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive
# wget: compose.yaml's health checks use it, as the official images ship it. Each layer drops apt's lists,
# caches and downloaded packages (a minbase system keeps them).
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends wget >/dev/null \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

FROM apt-base AS prometheus
# No recommends: Debian's prometheus recommends node-exporter, which the sandbox does not run.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && mkdir -p /prometheus /etc/prometheus/alerts \
    && chown prometheus:prometheus /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]

FROM apt-base AS alertmanager
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && mkdir -p /alertmanager \
    && chown prometheus:prometheus /alertmanager
USER prometheus
EXPOSE 9093
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
