"""Shopping guides: which members are a guide's (attribution); commission and tasks follow."""
