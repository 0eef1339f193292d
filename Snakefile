# gradual-learning: knowledge categories and gradual fine-tuning (Li et al., 2024).
# The run is described by config.yaml (or --configfile); rules live in rules/, logic in src/gradual/.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/prompts.smk"
include: "rules/detect.smk"
include: "rules/train.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
    localrule: True


# Knowledge detection alone (`snakemake detect`): the untuned model's categories and Table 2, no training.
rule detect:
    input:
        category_outputs([BASE]),
    localrule: True
