"""
``python -m bench.relay_peak OUTFILE [manage.py arguments]``: run a management command exactly as
``manage.py`` does (``bench.settings``), then write the process's own peak RSS (``VmHWM`` from
``/proc/self/status``, in kB) to OUTFILE as it exits.

The RSS benchmark uses it because ``ru_maxrss`` from ``wait4()`` is not usable for a child
started by a large parent: at ``exec`` the kernel carries the parent's high-water mark over.
"""

import os
import sys


def main():
    out_path, arguments = sys.argv[1], sys.argv[2:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["manage.py", *arguments])
    finally:
        with open("/proc/self/status", encoding="ascii") as status:
            hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
        with open(out_path, "w", encoding="ascii") as out:
            out.write(hwm)


if __name__ == "__main__":
    main()
