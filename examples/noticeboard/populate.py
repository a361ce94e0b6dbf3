"""Objects for the noticeboard demo: `python populate.py BUILD/config.yaml`.

A board with two notices: one in a good ink, one in an ink whose code is not #rrggbb, so the
ink fails and that notice and its posters are held back.
"""

from __future__ import annotations

import sys

import xsync


def main(config_path: str) -> None:
    with xsync.connect(config_path) as api:
        board = api.NoticeBoard(name="board", headline="Village notices")
        board.save()
        green = api.Ink(name="green", html_code="#00aa00")
        green.save()
        blurple = api.Ink(name="blurple", html_code="blurple")
        blurple.save()
        api.Notice(owner=board, name="fete", text="Summer fete on Saturday", ink=green, copies=2).save()
        api.Notice(owner=board, name="cat", text="Lost: a grey cat", ink=blurple, copies=1).save()
        print("created 1 board, 2 inks, 2 notices (the model policy prints them as 3 posters)")


if __name__ == "__main__":
    main(sys.argv[1])
