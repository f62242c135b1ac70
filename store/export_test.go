package store

// SetBeforeRename makes f call fn between writing its temporary file and
// renaming it over the token file; an error from fn fails the Save there.
func SetBeforeRename(f *File, fn func(tmp string) error) { f.beforeRename = fn }
