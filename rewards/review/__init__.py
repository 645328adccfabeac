"""The weekly list under public supervision: 公示, objections, amendments, the final list (定榜) and prize claims."""
