#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrdj.settings")
    from django.core.management import execute_from_command_line

    from mrdj.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as error:
        sys.exit(f"mrdj cannot start: {error}")


if __name__ == "__main__":
    main()
