package ast

// Walk visits n and, while fn returns true for a node, that node's children
// in source order. It covers the syntax tree (File, Body, Block, Label,
// Attribute, Value, Comment) and literal trees (List, Object, ObjectItem).
// A Value's literal is not part of the tree: decode it with lang.ParseValue.
func Walk(n Node, fn func(Node) bool) {
	if n == nil || !fn(n) {
		return
	}
	switch n := n.(type) {
	case *File:
		if n.Body != nil {
			Walk(n.Body, fn)
		}
	case *Body:
		for _, it := range n.Items {
			Walk(it, fn)
		}
	case *Block:
		for _, l := range n.Labels {
			Walk(l, fn)
		}
		if n.Body != nil {
			Walk(n.Body, fn)
		}
	case *Attribute:
		if n.Value != nil {
			Walk(n.Value, fn)
		}
	case *List:
		for _, e := range n.Elems {
			Walk(e, fn)
		}
	case *Object:
		for _, it := range n.Items {
			Walk(it, fn)
		}
	case *ObjectItem:
		if n.Key != nil {
			Walk(n.Key, fn)
		}
		if n.Value != nil {
			Walk(n.Value, fn)
		}
	}
}
