package server

// mapSlice converts store or gate values to their wire shapes; the result
// is never nil, so an empty list encodes as an empty array.
func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
