def analyse():
    return [{"called": True}]
