# An application exception module for the remote error tests of package
# interoptest: the Python peer finds it on PYTHONPATH, and Python clients
# rebuild its exceptions only when it is in their allowed_remote_exmods.


class Unhappy(Exception):
    """An exception with a keyword argument, as services define them: oslo
    sends its kwargs attribute with the failure, and a caller rebuilds it
    with Unhappy(*args, **kwargs)."""

    def __init__(self, message='unhappy', code=None):
        super(Unhappy, self).__init__(message)
        self.code = code
        self.kwargs = {'code': code}
