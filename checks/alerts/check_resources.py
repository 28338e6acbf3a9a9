"""The seed's resource alerts (12-14): memory, CPU, disk, from node_exporter.

Prometheus usually scrapes node_exporter on every host; these read its standard
metric names, the same whatever the FraiseQL version. (checks/host/ measures the
same on the machine the watcher runs on.) Which series each reads, and why:
docs/alert-rules.md.
"""

from __future__ import annotations

from fraiseql_checks import alert

#: Filesystems that are not disks: kernel and container mounts.
_NOT_DISKS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"'


@alert(
    expr="1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes > {{threshold}}",
    threshold=0.85,
    for_="10m",
    severity="warning",
    summary="Memory {{ $value | humanizePercentage }} in use on {{ $labels.instance }}",
    description="{{ $value | humanizePercentage }} of the memory of {{ $labels.instance }} is in use (total minus"
    " available; above 85% for 10 minutes). Look for a leak; consider a restart.",
    runbook="docs/runbooks/HighMemoryUsage.md",
)
def check_high_memory_usage():
    """More than 85% of memory is in use, for 10 minutes (seed alert 12)."""


@alert(
    expr='1 - avg by (job, instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) > {{threshold}}',
    threshold=0.8,
    for_="5m",
    severity="warning",
    name="HighCPUUsage",
    summary="CPU {{ $value | humanizePercentage }} busy on {{ $labels.instance }}",
    description="The CPUs of {{ $labels.instance }} were {{ $value | humanizePercentage }} busy over the last"
    " 5 minutes (above 80% for 5 minutes). Look for expensive operations; scale out.",
    runbook="docs/runbooks/HighCPUUsage.md",
)
def check_high_cpu_usage():
    """The CPUs are more than 80% busy, for 5 minutes (seed alert 13)."""


@alert(
    expr=f"node_filesystem_avail_bytes{{{_NOT_DISKS}}} / node_filesystem_size_bytes{{{_NOT_DISKS}}} < {{{{threshold}}}}",
    threshold=0.15,
    fires="below",
    severity="warning",
    summary="Only {{ $value | humanizePercentage }} free on {{ $labels.mountpoint }} of {{ $labels.instance }}",
    description="The filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) of {{ $labels.instance }} has"
    " {{ $value | humanizePercentage }} of its space free (below 15%). Clean up logs; extend the disk.",
    runbook="docs/runbooks/DiskSpaceRunningLow.md",
)
def check_disk_space_running_low():
    """A filesystem has less than 15% of its space free (seed alert 14)."""
