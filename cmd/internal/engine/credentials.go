package engine

import "context"

// onceCredentials asks for each secret once per run, though a run may
// log in twice.
type onceCredentials struct {
	creds           Credentials
	password, token *string
}

func (o *onceCredentials) Password(ctx context.Context) (string, error) {
	if o.password == nil {
		s, err := o.creds.Password(ctx)
		if err != nil {
			return "", err
		}
		o.password = &s
	}
	return *o.password, nil
}

func (o *onceCredentials) Token(ctx context.Context) (string, error) {
	if o.token == nil {
		s, err := o.creds.Token(ctx)
		if err != nil {
			return "", err
		}
		o.token = &s
	}
	return *o.token, nil
}
