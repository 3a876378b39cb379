"""The root-cause exercise: causes as data, and packs played on a throwaway stack."""
