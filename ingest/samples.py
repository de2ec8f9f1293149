def make_samples(folder):  # placeholder replaced below
    raise NotImplementedError
