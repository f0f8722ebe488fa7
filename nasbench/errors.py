"""The one exception type users see: a message that says what was wrong and what to do."""


class UserError(Exception):
    """Bad input from the user (flag, config value, data folder, record file).

    The CLI prints the message without a traceback and exits with status 2.
    """
