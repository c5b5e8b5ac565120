"""cpuinfo.py: what the bench scripts say about the CPU they ran on.

The model name alone does not tell CPUs apart ("AMD EPYC" has named Zen 3, 4
and 5 parts here), and each CPU keeps its own part of docs/benchmarks.md, so
the name carries the family and model numbers of /proc/cpuinfo.
"""


def _cpuinfo_fields():
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first CPU's block is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_name():
    """Model name, family and model: "AMD EPYC family 26 model 2"."""
    f = _cpuinfo_fields()
    name = f.get("model name", "?")
    if "cpu family" in f and "model" in f:
        name += " family %s model %s" % (f["cpu family"], f["model"])
    return name


def cpu_flags():
    """The CPU's feature flags as a set."""
    return set(_cpuinfo_fields().get("flags", "").split())
