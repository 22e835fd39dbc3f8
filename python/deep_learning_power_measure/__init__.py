"""AIPowerMeter's documented API (``deep_learning_power_measure``) over wattmeter.

Scripts written for AIPowerMeter (GreenAI-Uppa/AIPowerMeter) run unchanged::

    from deep_learning_power_measure.power_measure import experiment, parsers
    driver = parsers.JsonParser("output_folder")
    exp = experiment.Experiment(driver)
    p, q = exp.measure_yourself(period=2)
    ...                                   # the code to measure
    q.put(experiment.STOP_MESSAGE)
    p.join()

    exp_result = experiment.ExpResults(parsers.JsonParser("output_folder"))
    exp_result.print()

Recording is done by wattmeter's native core (hardware counters, exact
totals); ``JsonParser`` reads wattmeter recordings and AIPowerMeter's own
``power_metrics.json`` files alike. Where AIPowerMeter's arithmetic is wrong
this package does the right thing; every difference is listed in
docs/aipowermeter.md.
"""
