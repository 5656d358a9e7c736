"""Project settings. Kedro's defaults are used: OmegaConfigLoader, conf/base
and conf/<env>, destructive merge of top-level keys."""
